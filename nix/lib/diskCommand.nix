# diskCommand :: { plan, dest } -> string (shell)
#
# The shell step that makes the disk images a plan's stores read (a node's `disk`: the tar
# archive or FAT filesystem of one of the unikernel's folders, deterministic) and puts them
# beside the image installed at $out/<dest>, where a unix image looks for them and a Solo5
# tender is pointed at them (`--block:t=$out/t.fat`). Empty for plans without disks. Runs
# after renderCommand, in the same workspace: the plan is at <dir>/plans/<target>.json and
# the unikernel's folders beside it.
{ internal }:
{ plan, dest }:
let
  inherit (internal) shellEscape;
  disks = builtins.filter (n: n ? disk) plan.nodes;
in
if disks == [ ] then "" else ''
  mirage-nix disks ${shellEscape "${plan.dir}/plans/${plan.target}.json"} \
    --unikernel-dir ${shellEscape plan.dir} -o "$out/$(dirname ${shellEscape dest})"
''
