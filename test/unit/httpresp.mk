UNITS += httpresp
unit_httpresp_SRCS := http.c
