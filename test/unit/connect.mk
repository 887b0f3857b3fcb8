UNITS += connect
unit_connect_SRCS := connect.c
