UNITS += decode
unit_decode_SRCS := decode.c json.c buf.c
unit_decode_LIBS := -lm
