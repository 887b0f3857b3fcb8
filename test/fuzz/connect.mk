FUZZ += connect
fuzz_connect_SRCS := connect.c
