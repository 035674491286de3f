from ctanb.cli import main

main()
