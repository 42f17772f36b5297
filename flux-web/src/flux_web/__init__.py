"""Flux plugin: the web interface (Flask, served by waitress), started with ``flux webserver``."""
