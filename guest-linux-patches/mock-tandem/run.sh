#!/bin/sh
# Boots the Tandem Linux guest on mock-tandem, an EL2 stand-in for Tandem,
# in QEMU: a check of the Linux drivers (detection, /sys/hypervisor, hvc0
# with interrupt-driven input, earlycon) without the real hypervisor.
#
#   guest-linux-patches/mock-tandem/run.sh IMAGE INITRAMFS [BOOTARGS]
#
# IMAGE and INITRAMFS are what `cargo xtask linux` prints. BOOTARGS default
# to "console=hvc0 earlycon=tandem". NOIRQ=1 leaves the interrupt out of the
# hypervisor node (polled input), TRACE=1 logs non-Tandem HVCs. Leave QEMU
# with Ctrl-A X, or `poweroff` in the guest.
set -eu
[ $# -ge 2 ] || { sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
image=$1
initramfs=$2
bootargs=${3:-console=hvc0 earlycon=tandem}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

aarch64-linux-gnu-as --defsym TRACE="${TRACE:-0}" -o "$work/mock.o" "$here/mock-tandem.S"
aarch64-linux-gnu-ld --no-warn-rwx-segments -T "$here/mock-tandem.ld" -o "$work/mock.elf" "$work/mock.o"
aarch64-linux-gnu-objcopy -O binary "$work/mock.elf" "$work/mock.bin"

machine=virt,gic-version=3,virtualization=on
qemu="-cpu cortex-a72 -smp 2 -m 256M -nographic"
# The guest DT: QEMU's own, plus what Tandem's generated DT will have (the
# hypervisor node), minus the PL011 that the mock keeps for itself.
# shellcheck disable=SC2086
qemu-system-aarch64 -M "$machine,dumpdtb=$work/qemu.dtb" $qemu -kernel "$work/mock.bin" \
	-initrd "$initramfs" -append "$bootargs" >/dev/null
dtc -q -I dtb -O dts -o "$work/qemu.dts" "$work/qemu.dtb"
irq="		interrupts = <0x00 0x01 0x01>;	/* SPI 1, edge rising */"
[ "${NOIRQ:-0}" = 1 ] && irq=""
awk -v irq="$irq" '
	/^\/dts-v1\/;/ { print; print "/memreserve/ 0x40000000 0x200000;"; next }
	/^\tpl011@9000000 \{/ { print; print "\t\tstatus = \"disabled\";"; next }
	/^\tchosen \{/ {
		print "\thypervisor {"
		print "\t\tcompatible = \"tandem,hypervisor\";"
		if (irq != "") print irq
		print "\t};"
		print ""
	}
	{ print }
' "$work/qemu.dts" >"$work/tandem.dts"
dtc -q -I dts -O dtb -o "$work/tandem.dtb" "$work/tandem.dts"

# shellcheck disable=SC2086
qemu-system-aarch64 -M "$machine" $qemu -kernel "$work/mock.bin" -dtb "$work/tandem.dtb" \
	-device loader,file="$image",addr=0x40200000,force-raw=on \
	-initrd "$initramfs" -append "$bootargs"
