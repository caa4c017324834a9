from chalicelib.local.server import main

main()
