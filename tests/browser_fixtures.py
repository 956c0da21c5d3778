"""Browser tests: the app served on a real port, driven by Playwright in Debian's chromium."""
