"""``alog.integrations.uvicorn.run("pm_asgi:app", workers=2)``: the supervisor imports no app.

Its exit status is what the test checks: uvicorn's supervisor exits 0 however its workers
ended, and ``run()`` exits with the status a failed worker left for it.
"""

from __future__ import annotations

from alog.integrations import uvicorn as alog_uvicorn

if __name__ == "__main__":
    alog_uvicorn.run("pm_asgi:app", host="127.0.0.1", port=0, workers=2)
