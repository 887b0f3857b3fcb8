FUZZ += httpresp
fuzz_httpresp_SRCS := http.c
