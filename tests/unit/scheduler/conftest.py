from tests.unit.scheduler.factories import sent

__all__ = ["sent"]
