"""The relay's guest side (consoles/consumer.py GuestSide): what the guest sent leaves in as few
frames as the frame bound allows, byte for byte and in order, and a browser that cannot keep up
stops the relay reading from the guest instead of growing its buffer."""

from __future__ import annotations

import asyncio
import os

from consoles.consumer import GUEST_HIGH_WATER, MAX_FRAME, GuestSide


class FakeTransport:
    def __init__(self) -> None:
        self.reading = True
        self.closing = False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def guest_side() -> tuple[GuestSide, FakeTransport]:
    guest, transport = GuestSide(), FakeTransport()
    guest.connection_made(transport)  # type: ignore[arg-type]
    return guest, transport


def test_what_the_guest_sent_meanwhile_leaves_as_one_frame():
    async def scenario():
        guest, _ = guest_side()
        parts = [os.urandom(1000) for _ in range(50)]
        for part in parts:
            guest.data_received(part)
        return await guest.read(), b"".join(parts)

    frame, sent = asyncio.run(scenario())
    assert frame == sent


def test_a_burst_larger_than_a_frame_is_split_in_order_and_nothing_is_lost():
    async def scenario():
        guest, _ = guest_side()
        burst = os.urandom(3 * MAX_FRAME + 12345)
        guest.data_received(burst[:10])  # a small chunk, then one bigger than a frame
        guest.data_received(burst[10:])
        guest.connection_lost(None)  # the guest closes: what it sent still arrives
        frames = []
        while frame := await guest.read():
            frames.append(frame)
        return frames, burst

    frames, burst = asyncio.run(scenario())
    assert b"".join(frames) == burst
    assert all(len(frame) <= MAX_FRAME for frame in frames)
    assert len(frames) == 5  # the small chunk, three full frames of the big one, and its rest


def test_reading_from_the_guest_pauses_while_the_browser_is_behind():
    async def scenario():
        guest, transport = guest_side()
        chunk = os.urandom(64 * 1024)
        for _ in range(4 * GUEST_HIGH_WATER // len(chunk)):
            if not transport.reading:
                break
            guest.data_received(chunk)
        queued_when_paused, paused = guest._queued, not transport.reading
        while not transport.reading:
            await guest.read()
        return queued_when_paused, paused

    queued, paused = asyncio.run(scenario())
    assert paused
    assert GUEST_HIGH_WATER <= queued < GUEST_HIGH_WATER + 64 * 1024
