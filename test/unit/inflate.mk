UNITS += inflate
unit_inflate_SRCS := inflate.c
