// SPDX-License-Identifier: GPL-2.0-only
/*
 * tandem-stats: show what the Tandem hypervisor reports in /sys/hypervisor.
 *
 *   tandem-stats          a readable summary
 *   tandem-stats --line   one line of key=value pairs, for scripts and tests
 *
 * Exits 0 on Tandem, 1 when /sys/hypervisor/type is not "tandem" (then
 * --line prints "type=none"), 2 on a usage error.
 *
 * Built against the kernel's nolibc (tools/include/nolibc), so the static
 * binary needs no C library:
 *   aarch64-linux-gnu-gcc -static -Os -nostdlib -ffreestanding \
 *     -include nolibc.h -I <uapi headers> tandem-stats.c -lgcc
 */

#ifndef NOLIBC
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#endif

#ifndef SYSFS
#define SYSFS "/sys/hypervisor/"
#endif

static const char *const stat_names[] = {
	"exits", "hypercalls", "virqs_injected",
	"mmio_emulated", "wfi_exits", "uptime_ns",
	"channel_doorbells", "channel_denied",
	"virtio_forwarded", "virtio_notifies",
};

#define NSTATS (sizeof(stat_names) / sizeof(stat_names[0]))

/* Writes a followed by b into dst (size bytes); 0 on success. */
static int join(char *dst, unsigned int size, const char *a, const char *b)
{
	unsigned int la = strlen(a), lb = strlen(b);

	if (la + lb + 1 > size)
		return -1;
	memcpy(dst, a, la);
	memcpy(dst + la, b, lb + 1);

	return 0;
}

/* Reads a one-line sysfs file into buf without the newline; 0 on success. */
static int read_attr(const char *name, char *buf, int size)
{
	char path[96];
	int fd, n;

	if (join(path, sizeof(path), SYSFS, name))
		return -1;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';

	return 0;
}

static void pad(int width, int used)
{
	while (used++ < width)
		putchar(' ');
}

/* Prints a decimal string with thousands separators, right-aligned. */
static void put_number(const char *digits, int width)
{
	int len = strlen(digits), i;

	pad(width, len + (len - 1) / 3);
	for (i = 0; i < len; i++) {
		putchar(digits[i]);
		if ((len - 1 - i) % 3 == 0 && i != len - 1)
			putchar(',');
	}
}

static void usage(void)
{
	fputs("usage: tandem-stats [--line]\n"
	      "Show the Tandem hypervisor's /sys/hypervisor entries.\n",
	      stderr);
}

int main(int argc, char **argv)
{
	char type[32], version[32], vm_id[32], vcpus[32], value[32];
	char name[64];
	int line = 0;
	unsigned int i;

	if (argc == 2 && !strcmp(argv[1], "--line")) {
		line = 1;
	} else if (argc == 2 && (!strcmp(argv[1], "-h") ||
				 !strcmp(argv[1], "--help"))) {
		usage();
		return 0;
	} else if (argc != 1) {
		usage();
		return 2;
	}

	if (read_attr("type", type, sizeof(type)) || strcmp(type, "tandem")) {
		if (line)
			puts("type=none");
		else
			fputs("tandem-stats: not running on Tandem "
			      "(no \"tandem\" in /sys/hypervisor/type)\n",
			      stderr);
		return 1;
	}
	if (read_attr("version", version, sizeof(version)))
		strcpy(version, "?");
	if (read_attr("vm_id", vm_id, sizeof(vm_id)))
		strcpy(vm_id, "?");
	if (read_attr("vcpu_count", vcpus, sizeof(vcpus)))
		strcpy(vcpus, "?");

	if (line) {
		printf("type=%s version=%s vm_id=%s vcpu_count=%s",
		       type, version, vm_id, vcpus);
		for (i = 0; i < NSTATS; i++) {
			join(name, sizeof(name), "stats/", stat_names[i]);
			if (!read_attr(name, value, sizeof(value)))
				printf(" %s=%s", stat_names[i], value);
		}
		putchar('\n');
		return 0;
	}

	printf("Tandem hypervisor, ABI %s\n", version);
	printf("VM %s, %s vCPUs\n", vm_id, vcpus);
	puts("statistics:");
	for (i = 0; i < NSTATS; i++) {
		join(name, sizeof(name), "stats/", stat_names[i]);
		if (read_attr(name, value, sizeof(value)))
			continue;
		printf("  %s", stat_names[i]);
		pad(18, strlen(stat_names[i]));
		put_number(value, 26);
		putchar('\n');
	}

	return 0;
}
