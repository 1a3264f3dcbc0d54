# writeCargoLock :: lock -> string
#
# Cargo.lock text for a parsed (and possibly pruned) lock, in cargo's own layout, so
# cargo reads it without re-resolving and the text only changes when the packages do.
{ internal }:
lock:
let
  inherit (builtins) concatStringsSep map toJSON;
  inherit (internal) concatMapStrings optionalString;
  package = p: ''

    [[package]]
    name = ${toJSON p.name}
    version = ${toJSON p.version}
  '' + optionalString (p ? source) "source = ${toJSON p.source}\n"
  + optionalString (p ? checksum) "checksum = ${toJSON p.checksum}\n"
  + optionalString ((p.dependencies or [ ]) != [ ]) (
    "dependencies = [\n" + concatMapStrings (d: " ${toJSON d},\n") p.dependencies + "]\n"
  );
in
"# Written by mirage-nix from the workspace's Cargo.lock.\nversion = ${toString lock.version}\n"
  + concatMapStrings package lock.packages
