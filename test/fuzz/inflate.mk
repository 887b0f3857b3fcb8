FUZZ += inflate
fuzz_inflate_SRCS := inflate.c
