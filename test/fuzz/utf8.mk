FUZZ += utf8
fuzz_utf8_SRCS := utf8.c json.c buf.c
