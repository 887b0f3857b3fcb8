UNITS += dns
unit_dns_SRCS := dns.c
