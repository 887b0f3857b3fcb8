FUZZ += ws
fuzz_ws_SRCS := ws.c http.c $(BEARLIB)
