UNITS += idem
unit_idem_SRCS := idem.c
unit_idem_LIBS := $(BEARLIB)
