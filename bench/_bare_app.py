"""The baseline every benchmark compares against: a bare Flask route served the same way."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def bare():
    return "ok"
