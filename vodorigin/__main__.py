from vodorigin.cli import main

main()
