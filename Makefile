# sandbox-agent: a static musl binary with BearSSL. `make help` lists the targets.
VERSION := 0.1.0
BUILD   := build
BEARSSL := $(BUILD)/bearssl
BEARLIB := $(BEARSSL)/src/build/libbearssl.a
BEARINC := $(BEARSSL)/src/inc
BIN     := $(BUILD)/sandbox-agent
KHDR    := $(BUILD)/kheaders
GITREV  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

CC      := musl-gcc
WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wshadow -Wvla
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2
# no unwind tables: C without exceptions never unwinds, and .eh_frame was 11 KB of the binary
CFLAGS  := -std=c11 -D_GNU_SOURCE -Os $(WARN) $(HARDEN) -ffunction-sections -fdata-sections \
           -fno-asynchronous-unwind-tables -fno-unwind-tables \
           -iquote . -I$(BEARINC) -DAGENT_VERSION='"$(VERSION)"' -DAGENT_BUILD='"$(GITREV)"' \
           -isystem $(KHDR)
LDFLAGS := -static -s -Wl,--gc-sections -Wl,-z,relro,-z,now

# every top-level .c is part of the agent (one module each)
SRCS := $(sort $(wildcard *.c))
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)

# Unit tests: host compiler with sanitizers, each linked against its module only.
UCC     := clang
UFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -iquote . -I$(BEARINC) \
           -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
UNITS   := json http jwt metrics envset log sysinfo
unit_json_SRCS := json.c buf.c
unit_http_SRCS := http.c
unit_jwt_SRCS  := jwt.c b64.c json.c buf.c
unit_jwt_LIBS  := $(BEARLIB)
unit_metrics_SRCS := metrics.c
unit_envset_SRCS := envset.c util.c
unit_log_SRCS := log.c util.c
unit_sysinfo_SRCS := sysinfo.c
# a module's own unit test adds itself in test/unit/NAME.mk (UNITS += NAME, unit_NAME_SRCS)
-include $(wildcard test/unit/*.mk)

# The agent itself for dynamic checks: ASan+UBSan (the integration suite runs against it
# too) and a plain glibc -g build for valgrind (a static musl binary valgrinds poorly).
# Both keep the name sandbox-agent (tests look for it in /proc), in their own directories.
ASAN_BIN  := $(BUILD)/asan/sandbox-agent
DEBUG_BIN := $(BUILD)/debug/sandbox-agent
AGENT_DEFS = -DAGENT_VERSION='"$(VERSION)"' -DAGENT_BUILD='"$(GITREV)"'

# libFuzzer targets, one per parser (test/fuzz). make fuzz FUZZ_TIME=1200 for a long run.
FUZZ      := http json jwt query
FUZZ_TIME ?= 60
FFLAGS    := $(filter-out -fsanitize=%,$(UFLAGS)) -fsanitize=fuzzer,address,undefined
fuzz_http_SRCS  := http.c
fuzz_query_SRCS := http.c
fuzz_json_SRCS  := json.c buf.c
fuzz_jwt_SRCS   := jwt.c b64.c json.c buf.c $(BEARLIB)
# more targets add themselves in test/fuzz/NAME.mk (FUZZ += NAME, fuzz_NAME_SRCS)
-include $(wildcard test/fuzz/*.mk)

.PHONY: all deps run test unit bench image vm clean help fuzz valgrind soak size
all: $(BIN)

deps:
	@scripts/deps.sh build

# rebuilt when the script (its flags) changes
$(BEARLIB): scripts/bearssl.sh | deps
	@scripts/bearssl.sh $(BEARSSL)

# Linux UAPI headers (rtnetlink for --net) for musl-gcc, which searches no /usr/include: links
# to linux-libc-dev's linux/, asm/ and asm-generic/ only, never to glibc's own headers
$(KHDR):
	@mkdir -p $@
	@ln -sfn /usr/include/linux /usr/include/asm-generic $@/
	@ln -sfn /usr/include/$$(gcc -dumpmachine)/asm $@/asm

$(BUILD)/obj/%.o: %.c $(wildcard *.h) $(BEARLIB) | deps $(KHDR)
	@mkdir -p $(@D)
	@echo "CC  $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BIN): $(OBJS) $(BEARLIB)
	@echo "LD  $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) $(OBJS) $(BEARLIB) -o $@
	@ls -l $@ | awk '{print "built " $$NF ": " $$5 " bytes"}'

$(BUILD)/unit/test_%: test/unit/test_%.c $(wildcard *.h) $(BEARLIB) FORCE
	@mkdir -p $(@D)
	@$(UCC) $(UFLAGS) $< $(unit_$*_SRCS) $(unit_$*_LIBS) -o $@

$(ASAN_BIN): $(SRCS) $(wildcard *.h) $(BEARLIB)
	@mkdir -p $(@D)
	@$(UCC) $(UFLAGS) $(AGENT_DEFS) $(SRCS) $(BEARLIB) -lm -o $@

$(DEBUG_BIN): $(SRCS) $(wildcard *.h) $(BEARLIB)
	@mkdir -p $(@D)
	@gcc -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -iquote . -I$(BEARINC) $(AGENT_DEFS) \
	    $(SRCS) $(BEARLIB) -lm -o $@

# pysession.c carries pysession_driver.py (.incbin) as scripts/pymin.py shrinks it (comments,
# docstrings, indentation: 10.9 -> 7.2 KB; it checks the AST is unchanged), the original when
# python3 is missing; rebuilt when the Python changes. All three builds embed the same copy.
PYDRIVER := $(BUILD)/pysession_driver.py
$(PYDRIVER): pysession_driver.py scripts/pymin.py
	@mkdir -p $(@D)
	@if command -v python3 >/dev/null; then python3 scripts/pymin.py < $< > $@.tmp; \
	 else cp $< $@.tmp; fi && mv $@.tmp $@
$(BUILD)/obj/pysession.o $(ASAN_BIN) $(DEBUG_BIN): $(PYDRIVER)
PYDEF := -DPYSESSION_DRIVER='"$(PYDRIVER)"'
$(BUILD)/obj/pysession.o: CFLAGS += $(PYDEF)
$(ASAN_BIN) $(DEBUG_BIN): AGENT_DEFS += $(PYDEF)

$(BUILD)/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(wildcard *.c *.h) $(BEARLIB)
	@mkdir -p $(@D)
	@$(UCC) $(FFLAGS) $< $(fuzz_$*_SRCS) -o $@

FORCE:

# where the binary's bytes are: the same link, unstripped, with a map (scripts/size.py)
size: $(BIN)
	@$(CC) $(CFLAGS) $(filter-out -s,$(LDFLAGS)) -Wl,-Map,$(BUILD)/sandbox-agent.map $(OBJS) \
	    $(BEARLIB) -o $(BUILD)/sandbox-agent.unstripped
	@ls -l $(BIN) | awk '{print $$NF ": " $$5 " bytes stripped"}'
	@python3 scripts/size.py $(BUILD)/sandbox-agent.map

run: $(BIN)
	@PORT=$(PORT) scripts/run.sh $(BIN)

test: $(BIN) $(UNITS:%=$(BUILD)/unit/test_%) $(ASAN_BIN) $(DEBUG_BIN) $(FUZZ:%=$(BUILD)/fuzz/fuzz_%)
	@scripts/deps.sh test
	@scripts/sdk.sh
	@FUZZ_TARGETS="$(FUZZ)" scripts/test.sh $(BIN) $(UNITS)

fuzz: $(FUZZ:%=$(BUILD)/fuzz/fuzz_%)
	@scripts/deps.sh test
	@test/fuzz/run.sh $(FUZZ_TIME) $(FUZZ)
	@test/fuzz/cov.sh

valgrind: $(DEBUG_BIN)
	@scripts/deps.sh test
	@AGENT_DEBUG_BIN=$(DEBUG_BIN) /usr/bin/python3 -m pytest -q -p no:cacheprovider -rA \
	    test/integration/test_hostile.py -k valgrind

soak: $(BIN)
	@scripts/deps.sh bench
	@scripts/soak.sh $(BIN)

bench: $(BIN)
	@scripts/deps.sh bench
	@PUBLISH=$(PUBLISH) scripts/bench.sh $(BIN)

image: $(BIN)
	@scripts/deps.sh image
	@scripts/image.sh $(BIN)

vm: $(BIN)
	@scripts/deps.sh vm
	@scripts/vm.sh run $(BIN)

clean:
	rm -rf $(BUILD)

help:
	@echo "make        build $(BIN) (static, stripped)"
	@echo "make run    serve on 127.0.0.1:7777 (PORT=N or SANDBOX_AGENT_LISTEN=H:P) with a dev secret, print a token"
	@echo "make test   unit tests (ASan+UBSan) and integration tests against the binary"
	@echo "make bench  benchmarks against nginx (wrk) into build/bench/; PUBLISH=1 copies them into bench/"
	@echo "make image  localhost/sandbox-agent:latest FROM scratch (podman, else docker), < 3 MiB"
	@echo "make vm     boot the agent as a QEMU VM's /init (Debian cloud kernel), print a token"
	@echo "make fuzz   libFuzzer targets per parser, FUZZ_TIME seconds each (default 60)"
	@echo "make valgrind  a short scenario under valgrind memcheck (glibc -g build)"
	@echo "make soak   30 minutes of mixed load, figures into bench/soak.md"
	@echo "make size   where the binary's bytes are, by origin and by object (a linker map)"
