UNITS += initnet
unit_initnet_SRCS := initnet.c util.c
