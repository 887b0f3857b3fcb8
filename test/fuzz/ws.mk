FUZZ += ws
fuzz_ws_SRCS := ws.c http.c b64.c $(BEARLIB)
