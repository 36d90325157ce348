"""Run the gateway: python -m bot"""
import logging

from aiohttp import web

from bot.app import create_app
from core.jsonlog import configure as configure_json_logs
from core.settings import Settings


def main() -> None:
    configure_json_logs(logging.INFO)  # one JSON object per line on stdout (core/jsonlog.py)
    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
