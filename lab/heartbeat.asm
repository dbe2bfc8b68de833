; ha lab: the guest lab's tiny guest (ha lab up --guests), a 512-byte x86 boot sector.
;
; It prints "heartbeat N" on COM1 five times a second, N counting up from 1 since its boot, so
; whoever reads its serial output sees it run, stop, or start over. It waits halted (hlt) between
; heartbeats, woken by the PIT at 20 Hz, so an idle guest costs TCG little CPU. On an ACPI power
; button press (virsh shutdown) it powers itself off (S5), as an operating system would.
;
; Written for QEMU's "pc" machine (i440FX/PIIX4) under SeaBIOS, which puts the PIIX4's ACPI
; power management registers at I/O port 0x600. Build: nasm -f bin -o heartbeat.bin heartbeat.asm
; (test/unit/lab-guest.test.ts checks that the committed heartbeat.bin is exactly that).

bits 16
org 0x7c00

COM1      equ 0x3f8
PM1_STS   equ 0x600            ; PM1a status: bit 8 power button pressed (write 1 to clear)
PM1_EN    equ 0x602            ; PM1a enable: bit 8 lets the power button set its status bit
PM1_CNT   equ 0x604            ; PM1a control: SLP_EN (bit 13) with SLP_TYP 0 is QEMU's soft off
TICKS     equ 0x046c           ; the BIOS's IRQ 0 tick count (its timer handler stays in charge)
HZ        equ 20
PERIOD    equ HZ / 5           ; ticks between heartbeats: 200 ms

start:
        cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7c00
        cld

        mov dx, COM1 + 3        ; COM1: 115200 baud (divisor 1), 8 bits, no parity, 1 stop bit
        mov al, 0x80
        out dx, al
        mov dx, COM1
        mov al, 1
        out dx, al
        inc dx
        xor al, al
        out dx, al
        mov dx, COM1 + 3
        mov al, 0x03
        out dx, al

        mov al, 0x36            ; PIT channel 0, mode 3, at HZ
        out 0x43, al
        mov ax, 1193182 / HZ
        out 0x40, al
        mov al, ah
        out 0x40, al

        in al, 0xa1             ; IRQ 9 (ACPI's SCI) masked: the button is polled, not taken
        or al, 0x02
        out 0xa1, al
        mov dx, PM1_EN
        in ax, dx
        or ax, 0x0100
        out dx, ax
        sti

        mov si, booted
        call puts
        xor ebp, ebp            ; the heartbeat counter

beat:
        inc ebp
        mov si, heartbeat
        call puts
        mov eax, ebp
        call putdec
        mov si, crlf
        call puts
        mov bx, [TICKS]
.wait:
        hlt                     ; until the next timer tick (or any other interrupt)
        mov dx, PM1_STS
        in ax, dx
        test ax, 0x0100
        jnz poweroff
        mov ax, [TICKS]
        sub ax, bx              ; modulo 2^16, so a wrap of the count is one short wait at most
        cmp ax, PERIOD
        jb .wait
        jmp beat

poweroff:
        mov si, goodbye
        call puts
        mov dx, PM1_STS
        mov ax, 0x0100
        out dx, ax
        mov dx, PM1_CNT
        mov ax, 0x2000
        out dx, ax
.stop:
        cli
        hlt
        jmp .stop

puts:                           ; the 0-terminated string at ds:si
        lodsb
        test al, al
        jz .done
        call putc
        jmp puts
.done:
        ret

putc:                           ; al, once COM1's transmitter holding register is empty
        push dx
        push ax
        mov dx, COM1 + 5
.busy:
        in al, dx
        test al, 0x20
        jz .busy
        pop ax
        mov dx, COM1
        out dx, al
        pop dx
        ret

putdec:                         ; eax in decimal; clobbers eax, ecx, edx, di
        mov ecx, 10
        xor di, di
.divide:
        xor edx, edx
        div ecx
        push dx
        inc di
        test eax, eax
        jnz .divide
.digit:
        pop ax
        add al, '0'
        call putc
        dec di
        jnz .digit
        ret

booted:    db 13, 10, 'ha lab guest: booted', 13, 10, 0
heartbeat: db 'heartbeat ', 0
crlf:      db 13, 10, 0
goodbye:   db 'ha lab guest: ACPI power button, powering off', 13, 10, 0

        times 510 - ($ - $$) db 0
        dw 0xaa55
