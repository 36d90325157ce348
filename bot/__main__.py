"""Run the gateway: python -m bot"""
import logging

from aiohttp import web

from bot.app import create_app
from core.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
