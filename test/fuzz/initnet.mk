FUZZ += initnet
fuzz_initnet_SRCS := initnet.c util.c
