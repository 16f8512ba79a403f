from flexmeter.cli import main

main()
