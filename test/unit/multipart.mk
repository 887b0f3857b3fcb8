UNITS += multipart
unit_multipart_SRCS := multipart.c
