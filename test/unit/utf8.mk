UNITS += utf8
unit_utf8_SRCS := utf8.c json.c buf.c
