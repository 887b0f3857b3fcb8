UNITS += ws
unit_ws_SRCS := ws.c http.c
unit_ws_LIBS := $(BEARLIB)
