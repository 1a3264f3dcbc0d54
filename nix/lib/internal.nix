# Private helpers shared by the functions in this directory: the few pieces of nixpkgs'
# `lib` the library needs, so the host toolchain source works without nixpkgs.
let
  inherit (builtins)
    attrNames concatStringsSep filter foldl' isAttrs isBool isFloat isInt isList isString
    length map replaceStrings stringLength substring toJSON typeOf;

  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  hasSuffix = suf: s:
    let n = stringLength s; m = stringLength suf; in m <= n && substring (n - m) m s == suf;
  removePrefix = pre: s:
    if hasPrefix pre s then substring (stringLength pre) (stringLength s) s else s;
  removeSuffix = suf: s:
    if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;

  escapeRegex = replaceStrings
    [ "\\" "[" "]" "{" "}" "(" ")" "^" "$" "?" "*" "+" "|" "." ]
    [ "\\\\" "\\[" "\\]" "\\{" "\\}" "\\(" "\\)" "\\^" "\\$" "\\?" "\\*" "\\+" "\\|" "\\." ];

  # relativeTo root path: `path`, met in a `builtins.path` filter below `root`, relative to
  # `root`. Computed from the root's own name, not its length: with `--store <chroot>`
  # filters see physical paths (`<chroot>/nix/store/...`) while `toString root` is logical
  # (`/nix/store/...`), so the root is found inside the path, wherever the store is.
  relativeTo = root:
    let
      r = toString root;
      # A pattern may not name a store path; it only compares text here.
      inside = ".*${escapeRegex (builtins.unsafeDiscardStringContext r)}/(.*)";
    in
    path:
    let p = toString path; in
    if hasPrefix "${r}/" p then substring (stringLength r + 1) (-1) p
    else
      let m = builtins.match inside p; in
      if m != null then builtins.head m
      else throw "mirage-nix: the source filter of ${r} was given ${p}, which is not inside it";

  optional = cond: x: if cond then [ x ] else [ ];
  optionalString = cond: s: if cond then s else "";
  concatMapStrings = f: l: concatStringsSep "" (map f l);
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  filterAttrs = pred: set:
    builtins.listToAttrs (map (n: { name = n; value = set.${n}; })
      (filter (n: pred n set.${n}) (attrNames set)));

  # unique :: [a] -> [a], first occurrence wins, order kept.
  unique = foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];

  # Collapse "a/./b/../c" to "a/c"; paths are relative to the workspace root and may not
  # climb above it.
  normalizePath = path:
    let
      parts = filter (p: isString p && p != "" && p != ".") (builtins.split "/" path);
      step = acc: p:
        if p == ".." then
          (if acc == [ ] then
            throw ''
              mirage-nix: the path '${path}' leaves the workspace root.
              Path dependencies must point inside the repository; move the crate into it.
            '' else builtins.genList (i: builtins.elemAt acc i) (length acc - 1))
        else acc ++ [ p ];
    in
    concatStringsSep "/" (foldl' step [ ] parts);

  # TOML for the small documents the library writes (Cargo manifests and config).
  # Tables become dotted keys, so any nesting is valid TOML without section bookkeeping.
  tomlKey = k:
    if builtins.match "[A-Za-z0-9_-]+" k != null then k else toJSON k;
  tomlValue = v:
    if isString v then toJSON v
    else if isBool v || isInt v || isFloat v then toJSON v
    else if isList v then "[" + concatStringsSep ", " (map tomlValue v) + "]"
    else if isAttrs v then
      "{ " + concatStringsSep ", " (mapAttrsToList (k: x: "${tomlKey k} = ${tomlValue x}") v) + " }"
    else throw "mirage-nix: cannot write a ${typeOf v} as TOML";
  toTOML = set:
    let
      lines = prefix: s: builtins.concatLists (mapAttrsToList
        (k: v:
          let key = prefix ++ [ (tomlKey k) ]; in
          if isAttrs v && v != { } then lines key v
          else [ "${concatStringsSep "." key} = ${tomlValue v}" ])
        s);
    in
    concatStringsSep "\n" (lines [ ] set) + "\n";

  # The [profile.*] sections of a Cargo.toml text (the generator's template): the lines
  # from the first profile header up to the next line that is neither a profile header
  # nor a key of one (a comment, [workspace], the end).
  profileSections = template: concatStringsSep "\n"
    (foldl'
      (acc: l:
        if acc.done then acc
        else if builtins.match "[[]profile[.].*[]]" l != null then acc // { inside = true; out = acc.out ++ [ l ]; }
        else if acc.inside && (l == "" || builtins.match "[A-Za-z0-9_-]+ *=.*" l != null) then acc // { out = acc.out ++ [ l ]; }
        else if acc.inside then acc // { done = true; }
        else acc)
      { inside = false; done = false; out = [ ]; }
      (builtins.filter builtins.isString (builtins.split "\n" template))).out;

  # Where a plan's crate is rendered in a build (and its stand-in written in a layer).
  renderedDir = plan: "${plan.dir}/.mirage-nix/${plan.target}";

  # The code of a plan's stand-in (mkStandInManifest): an empty library, `no_std` for a
  # bare-metal target, so nothing is linked.
  standInLib = plan: if plan.image.std or true then "\n" else "#![no_std]\n";

  shellEscape = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  # Source trees. Every function taking `src` reads files through `at`, so `src` is either
  # a path (this repository: crates, plans and Cargo.lock under one root) or, for a
  # downstream flake, several roots mounted at folders of one build layout (mkUnikernel):
  #   { mirageNixTree = true; root = "mirage-nix";
  #     mounts = { "mirage-nix" = <the mirage-nix tree>; "myapp" = <the unikernel>; }; }
  # `root` is the mount whose Cargo.toml (workspace package, lints, profile) the builds use;
  # every mount's Cargo.lock is merged (mkWorkspace).
  isTree = src: builtins.isAttrs src && src.mirageNixTree or false;
  at = src: rel:
    if !(isTree src) then src + "/${rel}"
    else
      let
        r = normalizePath rel;
        hits = filter (m: r == m || hasPrefix "${m}/" r) (attrNames src.mounts);
      in
      if hits == [ ] then
        throw ''
          mirage-nix: '${rel}' is in none of the source tree's folders (${concatStringsSep ", " (attrNames src.mounts)}).
          A downstream unikernel's Cargo.toml reaches mirage-nix crates as ../mirage-nix/<crate>
          (e.g. `mirage-devices = { path = "../mirage-nix/devices" }`); fix the path.
        ''
      else
        let m = builtins.head hits; in
        src.mounts.${m} + substring (stringLength m) (stringLength r) r;
  # The folder of the tree holding the workspace's root Cargo.toml and Cargo.lock.
  rootDir = src: if isTree src then src.root else "";
  rootFile = src: file: at src (if isTree src then "${src.root}/${file}" else file);
  # Every Cargo.lock of the tree, the root's first.
  lockFiles = src:
    if isTree src then
      filter builtins.pathExists
        (map (m: at src "${m}/Cargo.lock")
          ([ src.root ] ++ filter (m: m != src.root) (attrNames src.mounts)))
    else filter builtins.pathExists [ (src + "/Cargo.lock") ];

in
{
  inherit hasPrefix hasSuffix removePrefix removeSuffix relativeTo optional optionalString
    concatMapStrings mapAttrsToList filterAttrs unique normalizePath toTOML tomlValue
    profileSections renderedDir standInLib shellEscape isTree at rootDir rootFile lockFiles;
}
