FUZZ += decode
fuzz_decode_SRCS := decode.c json.c buf.c -lm
