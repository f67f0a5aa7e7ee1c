from marketloop.cli.main import main

main()
