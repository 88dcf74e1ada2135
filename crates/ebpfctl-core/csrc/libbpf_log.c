// libbpf's log as bytes: each message is formatted here (libbpf hands a printf format and a
// va_list, which stable Rust cannot take apart) and passed to Rust as (level, bytes, length).
// Rust shows it lossily: libbpf prints names straight from an object, which may be any bytes.
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/libbpf.h>

typedef void (*ebpfctl_log_sink)(int level, const char *msg, size_t len);

static ebpfctl_log_sink sink;
static int max_level;

static int print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char small[512];
	va_list again;
	int n;

	if (!sink || (int)level > max_level)
		return 0;
	va_copy(again, args);
	n = vsnprintf(small, sizeof(small), fmt, args);
	if (n >= 0 && (size_t)n < sizeof(small)) {
		sink(level, small, (size_t)n);
	} else if (n >= 0) {
		char *big = malloc((size_t)n + 1);
		if (big && vsnprintf(big, (size_t)n + 1, fmt, again) >= 0)
			sink(level, big, (size_t)n);
		else
			sink(level, small, sizeof(small) - 1);
		free(big);
	}
	va_end(again);
	return 0;
}

// Routes every libbpf message up to max (0 warn, 1 info, 2 debug) to s; s NULL silences libbpf.
void ebpfctl_libbpf_log_install(ebpfctl_log_sink s, int max)
{
	sink = s;
	max_level = max;
	libbpf_set_print(s ? print : NULL);
}
