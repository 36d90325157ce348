"""Run the gateway: python -m bot"""
import asyncio
import logging

from aiohttp import web

from bot.app import create_app
from core.jsonlog import configure as configure_json_logs
from core.settings import Settings


def use_uvloop() -> bool:
    """uvloop (pinned already: Rasa's web server uses it) runs the gateway's event
    loop in C. Measured with `make bench` (docs/bench.md): the gateway's CPU per
    WeChat message went from 8.1-9.1 ms to 6.3 ms and what it adds to Rasa's
    latency from 9-12 ms to 3-7 ms. Plain asyncio when it is missing."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def main() -> None:
    use_uvloop()
    configure_json_logs(logging.INFO)  # one JSON object per line on stdout (core/jsonlog.py)
    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
