UNITS += runas
unit_runas_SRCS := runas.c
