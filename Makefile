# hookcast: webhook multicast daemon.  See README.md.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
SYSCONFDIR ?= /etc
UNITDIR   ?= /lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man

CC        ?= cc
PKGS      := libmicrohttpd libcurl libcjson sqlite3 libcrypto gnutls libsystemd
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wpointer-arith -Wsign-compare -Werror
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -DHOOKCAST_VERSION='"$(VERSION)"' $(WARN) \
             -pthread $(shell pkg-config --cflags $(PKGS))
LDLIBS    += $(shell pkg-config --libs $(PKGS)) -pthread

# SANITIZE=address,undefined or SANITIZE=thread builds into its own directory,
# so sanitized and plain objects never mix.
ifneq ($(SANITIZE),)
CFLAGS    += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
             -fno-omit-frame-pointer -O1
LDFLAGS   += -fsanitize=$(SANITIZE)
BUILD     ?= build-$(subst $(comma),-,$(SANITIZE))
endif
comma     := ,
BUILD     ?= build

# A sanitizer report fails the run instead of scrolling past.
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1

SRCS      := $(wildcard src/*.c)
# The dashboard's page, script and style, which dashboard_files.S embeds.
WEB       := $(wildcard src/dashboard/*)
LIBOBJS   := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRCS))) \
             $(BUILD)/dashboard_files.o
UNITS     := $(patsubst tests/%.c,%,$(wildcard tests/check_*.c))
UNITBINS  := $(addprefix $(BUILD)/,$(UNITS))
CHECKLIBS := $(shell pkg-config --libs check)

.PHONY: all run check unit integration bench soak install uninstall clean \
        fuzz fuzz-build fuzz-regress

all: $(BUILD)/hookcast

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/dashboard_files.o: src/dashboard_files.S $(WEB) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/hookcast: $(BUILD)/main.o $(LIBOBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/check_%: tests/check_%.c tests/unit.c tests/unit.h $(LIBOBJS)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< tests/unit.c $(LIBOBJS) $(CHECKLIBS) $(LDLIBS)

$(BUILD):
	mkdir -p $@

run:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	./$(BUILD)/hookcast --config etc/hookcast.conf --data-dir ./data

check:
	@sh scripts/deps.sh check
	@$(MAKE) --no-print-directory unit fuzz-regress integration

unit: $(UNITBINS)
	@set -e; for t in $(UNITBINS); do echo "== $$t"; CK_FORK=yes ./$$t; done

integration: $(BUILD)/hookcast tests/node_modules/.package-lock.json
	python3 tests/integration/run.py --binary $(BUILD)/hookcast

# libFuzzer harnesses (tests/fuzz/README.md): clang, ASan and UBSan, in
# their own build directory.  `make fuzz` runs each for FUZZ_SECONDS from
# its seed corpus; `make fuzz-regress` replays every corpus file through
# its harness once (part of `make check`).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := address,undefined
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE \
                -DHOOKCAST_VERSION='"$(VERSION)"' $(WARN) -pthread \
                -fno-sanitize-recover=all $(shell pkg-config --cflags $(PKGS))
FUZZERS      := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZBINS     := $(addprefix $(FUZZ_BUILD)/,$(FUZZERS))
FUZZOBJS     := $(patsubst $(BUILD)/%,$(FUZZ_BUILD)/obj/%,$(LIBOBJS))

$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/obj/dashboard_files.o: src/dashboard_files.S $(WEB) | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libhookcast.a: $(FUZZOBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libhookcast.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< \
	    $(FUZZ_BUILD)/libhookcast.a $(LDLIBS)

$(FUZZ_BUILD)/obj:
	mkdir -p $@

fuzz-build: $(FUZZBINS)

fuzz: fuzz-build
	sh tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZERS)

fuzz-regress: fuzz-build
	sh tests/fuzz/run.sh regress 0 $(FUZZ_BUILD) $(FUZZERS)

# The Node packages the tests use (the Standard Webhooks verifier), exactly
# as tests/package-lock.json pins them.
tests/node_modules/.package-lock.json: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund

bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	python3 bench/run.py --binary $(BUILD)/hookcast

# Not part of check or CI: SOAK_MINUTES (default 20) of churn against the
# -O2 build, judged for growth and loss (bench/soak.py; README, Soak).
soak:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory all
	python3 bench/soak.py --binary $(BUILD)/hookcast --out $(BUILD)/soak

install: $(BUILD)/hookcast
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/hookcast \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/hookcast $(DESTDIR)$(PREFIX)/bin/hookcast
	install -m 0644 etc/hookcast.conf $(DESTDIR)$(SYSCONFDIR)/hookcast/hookcast.conf
	install -m 0644 etc/hookcast.8 $(DESTDIR)$(MANDIR)/man8/hookcast.8
	sed 's|@BINDIR@|$(PREFIX)/bin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/hookcast.service \
	    > $(DESTDIR)$(UNITDIR)/hookcast.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hookcast.service

# The configuration file stays: it may hold an operator's settings and tokens.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hookcast $(DESTDIR)$(UNITDIR)/hookcast.service \
	    $(DESTDIR)$(MANDIR)/man8/hookcast.8

clean:
	rm -rf build build-*
