# @summary Keep one service's files in sync with hieradata by running `render`.
#
# render sees the node as the catalog does: `--node $trusted['certname']`,
# `--var environment=$environment` (render has no --environment of its own; `render lookup`
# has) and `--facts` with the facts Puppet compiled with, written as JSON (0600) to
# `<facts_dir>/<certname>.json` (under --noop a temporary file, removed after the check).
# Declare class render first: its command, state_dir, timeouts and config_file are read here;
# likewise class render::bundle: render then answers every lookup from its bundle (--bundle).
# Puppet runs `render --noop --quiet SERVICE` first: exit 0 is in
# sync, nothing to report. Exit 2 is a pending change: `puppet apply --noop` reports it (with the
# masked diff in its log) and a real run calls `render --diff SERVICE`, whose masked diff lands in
# the Puppet log; 2 ("changes made") is success. Any other exit (4, 6 failures; 64 usage) fails
# the resource, in --noop too. render restarts what changed itself: do not `notify` services
# from here, and nothing here notifies anything.
#
# Timeout of each render call, unless `timeout` is given (seconds):
#   lock_timeout + 60 + units * (2 * health_timeout + 30)
# a restart may wait health_timeout for the unit, and a failed one is rolled back and waited for
# again (2x); 30 s per unit for systemctl itself, 60 s for reading, rendering and writing, plus
# the wait for another run's lock. Defaults (60, 30, 1 unit): 210 s.
#
# @example
#   include render
#   render::service { 'keystone': units => 2 }
#   render::service { ['glance', 'placement']: }
#
# @param service         the service folder name on the template search path
# @param command         how to run render: its path, or an interpreter and its arguments
#                        (default: the class's `command`, else /usr/bin/render)
# @param options         extra options for both calls, e.g. ['--hieradata', '/srv/hieradata']
# @param units           how many units render may restart for this service (for the timeout)
# @param health_timeout  passed as --health-timeout when set; the timeout formula uses it, else
#                        the class's, else render's default 30
# @param lock_timeout    passed as --lock-timeout when set; else the class's, else 60
# @param timeout         seconds per render call, overriding the formula
# @param pass_facts      write $facts and pass --facts (false: render runs its own fact
#                        gathering, as it does from the command line)
# @param facts_dir       where the facts file goes (default: <the class's state_dir>/facts,
#                        else /var/lib/render/facts)
define render::service (
  String[1]                   $service        = $title,
  Optional[Variant[String[1], Array[String[1], 1]]] $command = undef,
  Array[String]               $options        = [],
  Integer[1]                  $units          = 1,
  Optional[Numeric]           $health_timeout = undef,
  Optional[Numeric]           $lock_timeout   = undef,
  Optional[Integer[1]]        $timeout        = undef,
  Boolean                     $pass_facts     = true,
  Optional[String[1]]         $facts_dir      = undef,
) {
  $class_command = getvar('render::command')
  $run = $command ? {
    undef   => $class_command ? { undef => ['/usr/bin/render'], default => [$class_command].flatten },
    default => [$command].flatten,
  }
  $health = [$health_timeout, getvar('render::health_timeout'), 30].filter |$v| { $v =~ NotUndef }[0]
  $lock = [$lock_timeout, getvar('render::lock_timeout'), 60].filter |$v| { $v =~ NotUndef }[0]
  $seconds = $timeout ? {
    undef   => Integer($lock + 60 + $units * (2 * $health + 30)),
    default => $timeout,
  }
  $state_dir = getvar('render::state_dir')
  $dir = $facts_dir ? {
    undef   => $state_dir ? { undef => '/var/lib/render/facts', default => "${state_dir}/facts" },
    default => $facts_dir,
  }
  # render reads /etc/render/render.conf by itself; another file of the class is named.
  $config_file = getvar('render::config_file')
  $config = $config_file ? {
    undef                     => [],
    '/etc/render/render.conf' => [],
    default                   => ['--config', $config_file],
  }
  $certname = $trusted['certname']
  $scope = ['--node', $certname, '--var', "environment=${environment}"]
  $timeouts = [
    $health_timeout ? { undef => [], default => ['--health-timeout', String($health_timeout)] },
    $lock_timeout ? { undef => [], default => ['--lock-timeout', String($lock_timeout)] },
  ].flatten

  # class render::bundle, when declared first: the lookups come from the bundle Puppet delivers
  $bundle = getvar('render::bundle::path')
  $bundle_key = getvar('render::bundle::key_file')
  $from_bundle = $bundle ? {
    undef   => [],
    default => ['--bundle', $bundle] + ($bundle_key ? { undef => [], default => ['--bundle-key', $bundle_key] }),
  }
  if $bundle =~ NotUndef {
    File[$bundle] -> Render_sync[$service]
  }

  if getvar('render::manage_package') == true {
    Package[getvar('render::package_name')] -> Render_sync[$service]
  }
  if getvar('render::manage_config') == true {
    File[$config_file] -> Render_sync[$service]
  }
  render_sync { $service:
    state      => in_sync,
    command    => $run,
    options    => $config + $scope + $from_bundle + $timeouts + $options,
    timeout    => $seconds,
    facts      => $pass_facts ? { true => $facts, default => undef },
    facts_file => $pass_facts ? { true => "${dir}/${certname}.json", default => undef },
  }
}
