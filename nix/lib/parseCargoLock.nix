# parseCargoLock :: path | { text } -> { version; packages; byId; roots }
#
# Parses a Cargo.lock (format 3 or 4) with `builtins.fromTOML`. Each package gets an `id`
# ("name version"), a `kind` ("registry", "git" or "path"), and `deps`, its dependencies
# resolved to ids (Cargo.lock writes "name" when the name is unambiguous, else
# "name version" or "name version (source)").
{ internal }:
lock:
let
  inherit (builtins) elemAt filter head length listToAttrs map split;
  inherit (internal) hasPrefix;
  where = if builtins.isAttrs lock then "the given Cargo.lock" else toString lock;
  text = if builtins.isAttrs lock then lock.text else builtins.readFile lock;
  parsed = builtins.fromTOML text;
  version = parsed.version or 1;
  packages0 =
    if version < 3 then
      throw ''
        mirage-nix: ${where} is a version ${toString version} lock file, which keeps checksums
        apart from the packages. Rewrite it with a current cargo: `cargo update --workspace`.
      ''
    else parsed.package or [ ];

  idOf = p: "${p.name} ${p.version}";
  kindOf = p:
    if !(p ? source) then "path"
    else if hasPrefix "registry+" p.source || hasPrefix "sparse+" p.source then "registry"
    else if hasPrefix "git+" p.source then "git"
    else throw "mirage-nix: ${where}: package ${idOf p} has an unknown source '${p.source}'.";

  byName = builtins.groupBy (p: p.name) packages0;
  resolve = from: dep:
    let
      words = filter builtins.isString (split " " dep);
      name = head words;
      candidates = byName.${name} or [ ];
      matching =
        if length words == 1 then candidates
        else filter (p: p.version == elemAt words 1) candidates;
    in
    if length matching == 1 then idOf (head matching)
    else
      throw ''
        mirage-nix: ${where}: cannot resolve dependency "${dep}" of ${from}.
        The lock file is inconsistent; regenerate it with `cargo update --workspace`.
      '';

  packages = map
    (p: p // {
      id = idOf p;
      kind = kindOf p;
      deps = map (resolve (idOf p)) (p.dependencies or [ ]);
    })
    packages0;
in
{
  inherit version packages;
  byId = listToAttrs (map (p: { name = p.id; value = p; }) packages);
}
