// Drives libbpf's btf_dump to write a C header (vmlinux.h style) for a BTF blob. The text goes
// to a writer callback (Rust), a chunk per printf, so no file is involved.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

// Returns 0, or non-zero to stop the dump (the reader went away).
typedef int (*ebpfctl_write_fn)(void *ctx, const char *buf, size_t len);

struct out {
	ebpfctl_write_fn write;
	void *ctx;
	int failed;
};

static void put(struct out *o, const char *buf, size_t len)
{
	if (!o->failed && o->write(o->ctx, buf, len))
		o->failed = 1;
}

static void emit(void *ctx, const char *fmt, va_list args)
{
	struct out *o = ctx;
	char small[1024];
	va_list again;
	int n;

	if (o->failed)
		return;
	va_copy(again, args);
	n = vsnprintf(small, sizeof(small), fmt, args);
	if (n < 0) {
		o->failed = 1;
	} else if ((size_t)n < sizeof(small)) {
		put(o, small, (size_t)n);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big && vsnprintf(big, (size_t)n + 1, fmt, again) >= 0)
			put(o, big, (size_t)n);
		else
			o->failed = 1;
		free(big);
	}
	va_end(again);
}

static void puts_out(struct out *o, const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	put(o, s, n);
}

// The BTF comes from, in this order of preference: data/size (raw BTF in memory), path (a
// raw BTF or ELF file libbpf reads), or the kernel by id. base_path, when set, is the base
// BTF of a split BTF (a kernel module's). Returns 0, a negative errno, or -EPIPE when the
// writer asked to stop.
int ebpfctl_btf_dump_c(const void *data, size_t size, const char *path, unsigned int id,
		       const char *base_path, ebpfctl_write_fn write, void *ctx)
{
	struct btf *base = NULL, *btf = NULL;
	struct btf_dump *d = NULL;
	struct out o = { write, ctx, 0 };
	int err = 0;

	if (base_path) {
		base = btf__parse(base_path, NULL);
		if (!base)
			return -errno;
	}
	if (data)
		btf = btf__new_split(data, (__u32)size, base);
	else if (path)
		btf = btf__parse_split(path, base);
	else
		btf = btf__load_from_kernel_by_id_split(id, base);
	if (!btf) {
		err = -errno;
		goto out;
	}
	d = btf_dump__new(btf, emit, &o, NULL);
	if (!d) {
		err = -errno;
		goto out;
	}

	puts_out(&o, "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n");
	puts_out(&o, "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n");
	puts_out(&o, "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n");
	__u32 n = btf__type_cnt(btf);
	for (__u32 i = base ? btf__type_cnt(base) : 1; i < n && !o.failed; i++) {
		err = btf_dump__dump_type(d, i);
		if (err)
			goto out;
	}
	puts_out(&o, "\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n#endif /* __VMLINUX_H__ */\n");
out:
	if (!err && o.failed)
		err = -EPIPE;
	if (d)
		btf_dump__free(d);
	btf__free(btf);
	btf__free(base);
	return err;
}
