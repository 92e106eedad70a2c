# hookcast: webhook multicast daemon.  See README.md.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
SYSCONFDIR ?= /etc
UNITDIR   ?= /lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man

CC        ?= cc
PKGS      := libmicrohttpd libcurl libcjson sqlite3 libcrypto gnutls libsystemd

# The user's flags: `make CFLAGS=-O0` or `make LDFLAGS=...` replaces only
# these, never the flags the build needs below.  A sanitizer build's default
# is -O1 (see SANITIZE).
ifneq ($(SANITIZE),)
CFLAGS    ?= -O1 -g
endif
CFLAGS    ?= -O2 -g
LDFLAGS   ?=
LDLIBS    ?=

# The flags the build needs, combined with the user's at every compile and
# link.
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wpointer-arith -Wsign-compare -Wcast-qual -Wformat=2 \
             -Wwrite-strings -Wmissing-declarations -Werror
# The version's quotes escaped, not single-quoted: cppcheck reads the
# command in compile_commands.json and does not undo single quotes.
HC_CFLAGS := -std=c11 -D_GNU_SOURCE -DHOOKCAST_VERSION=\"$(VERSION)\" \
             -pthread $(shell pkg-config --cflags $(PKGS))
HC_LIBS   := $(shell pkg-config --libs $(PKGS)) -pthread
# Each object also writes its header dependencies beside it (BUILD/x.d).
# Objects depend on the Makefile too: a changed recipe or flag rebuilds
# them, and so does a tree built before the .d files existed, which would
# otherwise keep objects compiled against older headers.
DEPFLAGS  := -MMD -MP

# SANITIZE=address,undefined or SANITIZE=thread builds into its own directory,
# so sanitized and plain objects never mix.
comma     := ,
ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
BUILD     ?= build-$(subst $(comma),-,$(SANITIZE))
endif
BUILD     ?= build

ALL_CFLAGS  = $(HC_CFLAGS) $(SAN_FLAGS) $(WARN) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)

# Quiet output (`CC src/x.c`) unless V=1.
ifeq ($(V),1)
Q         :=
say       :=
else
Q         := @
say        = @printf '  %-8s %s\n' '$(1)' '$(2)'
endif

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

.PHONY: all run check unit integration bench callgrind soak install uninstall clean \
        fuzz fuzz-build fuzz-regress compdb lint lint-cycles lint-cppcheck \
        lint-tidy format format-check FORCE

all: $(BUILD)/hookcast

$(BUILD)/%.o: src/%.c Makefile | $(BUILD)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/dashboard_files.o: src/dashboard_files.S $(WEB) | $(BUILD)
	$(call say,AS,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/hookcast: $(BUILD)/main.o $(LIBOBJS)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HC_LIBS) $(LDLIBS)

# The suites' shared main and helpers, compiled once (and on its own, so
# that its dependency file is not the suite's).
$(BUILD)/unit.o: tests/unit.c Makefile | $(BUILD)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Isrc -c -o $@ $<

$(BUILD)/check_%: tests/check_%.c Makefile $(BUILD)/unit.o $(LIBOBJS)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Isrc $(ALL_LDFLAGS) -o $@ $< \
	    $(BUILD)/unit.o $(LIBOBJS) $(CHECKLIBS) $(HC_LIBS) $(LDLIBS)

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
# FUZZ_CFLAGS is the user's, like CFLAGS; the rest is what the harnesses need.
FUZZ_CFLAGS  ?= -g -O1
FUZZ_ALL_CFLAGS = $(HC_CFLAGS) $(WARN) -fno-omit-frame-pointer \
                  -fno-sanitize-recover=all $(CPPFLAGS) $(FUZZ_CFLAGS)
FUZZERS      := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZBINS     := $(addprefix $(FUZZ_BUILD)/,$(FUZZERS))
FUZZOBJS     := $(patsubst $(BUILD)/%,$(FUZZ_BUILD)/obj/%,$(LIBOBJS))

$(FUZZ_BUILD)/obj/%.o: src/%.c Makefile | $(FUZZ_BUILD)/obj
	$(call say,CC,$< [fuzz])
	$(Q)$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) $(DEPFLAGS) \
	    -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/obj/dashboard_files.o: src/dashboard_files.S $(WEB) | $(FUZZ_BUILD)/obj
	$(call say,AS,$< [fuzz])
	$(Q)$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libhookcast.a: $(FUZZOBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h Makefile $(FUZZ_BUILD)/libhookcast.a
	$(call say,CCLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) $(DEPFLAGS) -Isrc \
	    -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< $(FUZZ_BUILD)/libhookcast.a \
	    $(HC_LIBS) $(LDLIBS)

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

# Instructions per delivery under callgrind, unsigned and signed, with
# where they go (bench/callgrind.py; doc/benchmarks.md).  Needs valgrind.
callgrind:
	@sh scripts/deps.sh callgrind
	@$(MAKE) --no-print-directory all
	python3 bench/callgrind.py --binary $(BUILD)/hookcast

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

# compile_commands.json for clang-tidy, cppcheck and editors, written from
# the flags above (each file as it is compiled), so it needs no tool and no
# rebuild, and is rewritten on every use.
COMPDB      := $(BUILD)/compile_commands.json
COMPDB_SRCS := $(SRCS) $(wildcard tests/check_*.c) tests/unit.c \
               $(wildcard tests/fuzz/fuzz_*.c)
json_str     = $(subst ",\",$(subst \,\\,$(1)))
compdb_entry = {"directory": "$(CURDIR)", "file": "$(1)", "command": \
               "$(call json_str,$(CC) $(HC_CFLAGS) $(SAN_FLAGS) \
               $(WARN) $(CPPFLAGS) $(CFLAGS) -Isrc -c \
               -o $(BUILD)/$(basename $(notdir $(1))).o $(1))"}

$(COMPDB): FORCE | $(BUILD)
	$(call say,GEN,$@)
	$(file >$@,[$(call compdb_entry,$(firstword $(COMPDB_SRCS))))
	$(foreach s,$(wordlist 2,$(words $(COMPDB_SRCS)),$(COMPDB_SRCS)),\
	    $(file >>$@,$(comma)$(call compdb_entry,$(s))))
	$(file >>$@,])

compdb: $(COMPDB)

FORCE:

# make lint: the include-cycle check (scripts/include-cycles.py), cppcheck
# and clang-tidy (its checks in .clang-tidy) over every file
# compile_commands.json has (src/, the unit suites, the fuzzing harnesses)
# as they are compiled; -k so that one failing step does not hide the
# others' findings.
# cppcheck skips variableScope: style(9) declares locals at a block's top.
CPPCHECK    ?= cppcheck
CLANG_TIDY  ?= clang-tidy
LINT_JOBS   ?= 2
LINT_SRCS   := $(COMPDB_SRCS)

lint:
	@sh scripts/deps.sh lint
	@$(MAKE) --no-print-directory -k lint-cycles format-check lint-cppcheck lint-tidy

lint-cycles:
	$(call say,CYCLES,src)
	$(Q)python3 scripts/include-cycles.py src

lint-cppcheck: $(COMPDB)
	$(call say,CPPCHECK,$(words $(LINT_SRCS)) files)
	$(Q)$(CPPCHECK) --project=$(COMPDB) \
	    $(addprefix --file-filter=,$(LINT_SRCS)) \
	    --enable=warning,style,performance,portability \
	    --suppress=variableScope --inline-suppr --error-exitcode=1 --quiet \
	    --template='{file}:{line}: {severity}: {message} [{id}]' -j$(LINT_JOBS)

lint-tidy: $(COMPDB)
	$(call say,TIDY,$(words $(LINT_SRCS)) files)
	$(Q)printf '%s\n' $(LINT_SRCS) | \
	    xargs -P $(LINT_JOBS) -n 4 $(CLANG_TIDY) -p $(BUILD) --quiet

# clang-format (.clang-format): format rewrites the files, format-check
# counts per file the lines it would change and fails if there are any.
CLANG_FORMAT ?= clang-format
FORMAT_SRCS  := $(wildcard src/*.c src/*.h)

format:
	$(CLANG_FORMAT) -i $(FORMAT_SRCS)

format-check:
	@CLANG_FORMAT=$(CLANG_FORMAT) sh scripts/format-check.sh $(FORMAT_SRCS)

# The header dependencies each compile wrote (-MMD -MP).
-include $(wildcard $(BUILD)/*.d $(FUZZ_BUILD)/*.d $(FUZZ_BUILD)/obj/*.d)
