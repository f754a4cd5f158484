from hnet_keras.cli import main

main()
