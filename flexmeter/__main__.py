from flexmeter.cli import app

app()
