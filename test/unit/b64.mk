UNITS += b64
unit_b64_SRCS := b64.c
