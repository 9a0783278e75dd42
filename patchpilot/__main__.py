from patchpilot.cli import main

main()
