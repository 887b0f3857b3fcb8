UNITS += ws
unit_ws_SRCS := ws.c http.c b64.c
unit_ws_LIBS := $(BEARLIB)
