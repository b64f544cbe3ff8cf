# @summary Keep one service's files in sync with hieradata by running `render`.
#
# Puppet calls `render --noop --quiet SERVICE` first (`unless`): exit 0 means in sync and the exec
# is skipped, so Puppet reports a change only when render really changes something. Otherwise it
# runs `render --diff SERVICE`, whose masked diff lands in the Puppet log; exit 2 ("changes made")
# counts as success, 4 and 6 (failures) fail the resource.
#
# @example
#   render::service { ['keystone', 'glance']: }
#
# @param service  the service folder name in service_templates
# @param command  how to run render (an absolute path, or an interpreter and module)
# @param options  extra options for both calls, e.g. ['--hieradata', '/srv/hieradata']
define render::service (
  String[1]     $service = $title,
  String[1]     $command = '/usr/local/bin/render',
  Array[String] $options = [],
) {
  $opts = $options.map |$option| { shellquote($option) }.join(' ')
  exec { "render ${service}":
    command   => "${command} --diff ${opts} ${shellquote($service)}",
    unless    => "${command} --noop --quiet ${opts} ${shellquote($service)}",
    returns   => [0, 2],
    logoutput => true,
    path      => ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
  }
}
