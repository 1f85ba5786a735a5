"""The gunicorn worker class of the web process, as gunicorn's master sees it.

    gunicorn cloud.asgi:application -k cloud.web_worker.Worker …

The master imports the worker class and makes each worker's object before it forks; the worker
that serves is uvicorn's (cloud/web_uvicorn.py). Importing that one in the master loaded uvicorn,
websockets and their dependencies there (~7 MiB of the master's 30, bench/README.md "Memory") for
a process that never serves a request. This class is gunicorn's plain base worker in the master,
and in the forked worker, before anything else, becomes cloud.web_uvicorn.Worker, keeping every
field the master set up (its heartbeat file above all, which the master watches for the timeout).
No Django here either (tests/unit/test_web_master_imports.py).
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.base import Worker as BaseWorker


class Worker(BaseWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_args = (args, kwargs)

    def init_process(self) -> None:  # in the forked worker
        self.become_uvicorn_worker()
        self.init_process()  # now cloud.web_uvicorn.Worker's

    def become_uvicorn_worker(self) -> None:
        """Turn this object into cloud.web_uvicorn.Worker, as if made as one by the master, except
        that what the master made pre-fork stays: the heartbeat file (a second would never be
        watched), the pid, the sockets, the request limit with its jitter."""
        from cloud.web_uvicorn import Worker as UvicornWorker

        made_by_master = dict(self.__dict__)
        args, kwargs = self._init_args
        self.__class__ = UvicornWorker  # a subclass of the same base
        UvicornWorker.__init__(self, *args, **kwargs)
        self.tmp.close()  # the heartbeat file its __init__ opened: the master watches its own
        self.__dict__.update(made_by_master)
