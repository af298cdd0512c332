from robofleet.cli import main

main()
