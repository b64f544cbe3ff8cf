# @summary The answers to every lookup this node's services make, resolved on the Puppet server
# and delivered as a Sensitive file, for nodes that have no hieradata (see the README, "Agent
# nodes (server/agent sites)").
#
# The function render::bundle runs `render bundle` while the server compiles the catalog, with
# the node's $facts, $trusted and environment, and the file is written 0600, root-owned, with no
# diff and no filebucket copy (a backup would keep the old content in the clientbucket).
# render::service passes `--bundle path` (and `--bundle-key key` when encrypted) to render when
# this class is declared before it, and orders the file before its check.
#
# @example
#   class { 'render::bundle': services => ['keystone', 'glance'] }
#   render::service { ['keystone', 'glance']: options => ['--hieradata', '/nonexistent'] }
#
# @param services    the services the node renders (the same names as its render::service)
# @param path        where the node keeps the bundle
# @param command     render on the compiling side (the server): a path, or an argv
# @param hieradata   the data directory on the server (default: this environment's directory)
# @param templates   the template search path on the server (default: render's)
# @param encrypt     encrypt the bundle to the node's certificate (the catalog holds ciphertext)
# @param encrypt_to  that certificate on the server (default: the CA's signed/<certname>.pem)
# @param key         the node's private key, which opens the bundle on the node (default: the
#                    server's ssldir layout: <ssldir>/private_keys/<certname>.pem)
# @param owner       the file's owner (root: render refuses a bundle anyone else could change)
# @param group       the file's group
# @param extra       more arguments for `render bundle` (e.g. ['--var', 'role=controller'])
class render::bundle (
  Array[String[1]]                         $services,
  String[1]                                $path       = '/var/lib/render/bundle.json',
  Variant[String[1], Array[String[1], 1]]  $command    = '/usr/bin/render',
  Optional[String[1]]                      $hieradata  = undef,
  Optional[Array[String[1]]]               $templates  = undef,
  Boolean                                  $encrypt    = true,
  Optional[String[1]]                      $encrypt_to = undef,
  Optional[String[1]]                      $key        = undef,
  String[1]                                $owner      = 'root',
  String[1]                                $group      = 'root',
  Array[String]                            $extra      = [],
) {
  $given = {
    'command'    => $command,
    'hieradata'  => $hieradata,
    'templates'  => $templates,
    'encrypt'    => $encrypt,
    'encrypt_to' => $encrypt_to,
    'extra'      => $extra,
  }.filter |$name, $value| { $value =~ NotUndef }
  $key_file = $encrypt ? {
    true    => $key ? {
      undef   => "${settings::ssldir}/private_keys/${trusted['certname']}.pem",
      default => $key,
    },
    default => undef,
  }
  file { $path:
    ensure    => file,
    owner     => $owner,
    group     => $group,
    mode      => '0600',
    content   => render::bundle($services, $given),
    show_diff => false,
    backup    => false,
  }
}
