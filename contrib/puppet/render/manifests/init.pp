# @summary Install render, manage /etc/render/render.conf, and run its drift timer.
#
# The package (`package {'render':}`) ships /usr/bin/render, the templates, the systemd units and
# this module. Without it (render from pip): `manage_package => false`, `command` naming the
# pip-installed render, and the units copied from contrib/systemd/ into /etc/systemd/system/
# (their ExecStart names /usr/bin/render: a drop-in `ExecStart=` / `ExecStart=<command> ...`
# changes it), or `manage_timer => false`.
#
# The configuration file is written from the parameters below (each a long option of render:
# `machines_dir` is `machines-dir = ...`) plus `settings` for any other option; parameters left
# undef are not written, so render's defaults apply. render reads it on every call, the drift
# timer's and render::service's alike, so they agree without repeating options.
#
# @example
#   class { 'render':
#     hieradata      => '/etc/puppet/code/environments/production',
#     health_timeout => 60,
#     settings       => { 'keep-versions' => 10 },
#   }
#   render::service { ['keystone', 'glance']: }
#
# @param manage_package  install the package (false: render is installed another way)
# @param package_name    the Debian package
# @param package_ensure  installed, latest, or a version
# @param command         render's path (render::service uses it)
# @param manage_config   write config_file (false: keep the package's conffile as it is)
# @param config_file     the configuration file render reads
# @param hieradata       --hieradata
# @param templates       --templates, a search path (site folders first)
# @param machines_dir    --machines-dir
# @param host_root       --host-root
# @param state_dir       --state-dir (also where render::service writes the facts it passes)
# @param health_timeout  --health-timeout, seconds (also render::service's exec timeout formula)
# @param lock_timeout    --lock-timeout, seconds
# @param fact_file       --fact-file (the Facter external fact)
# @param metrics_file    --metrics-file (node_exporter's textfile collector)
# @param settings        any other option: key (long option without dashes) => value
# @param manage_timer    enable and start render-drift.timer
class render (
  Boolean                    $manage_package = true,
  String[1]                  $package_name   = 'render',
  String[1]                  $package_ensure = 'installed',
  String[1]                  $command        = '/usr/bin/render',
  Boolean                    $manage_config  = true,
  String[1]                  $config_file    = '/etc/render/render.conf',
  Optional[String[1]]        $hieradata      = undef,
  Optional[Array[String[1]]] $templates      = undef,
  Optional[String[1]]        $machines_dir   = undef,
  Optional[String[1]]        $host_root      = undef,
  Optional[String[1]]        $state_dir      = undef,
  Optional[Numeric]          $health_timeout = undef,
  Optional[Numeric]          $lock_timeout   = undef,
  Optional[String[1]]        $fact_file      = undef,
  Optional[String[1]]        $metrics_file   = undef,
  Hash[String[1], Variant[String, Numeric, Boolean]] $settings = {},
  Boolean                    $manage_timer   = true,
) {
  $named = {
    'hieradata'      => $hieradata,
    'templates'      => $templates ? { undef => undef, default => $templates.join(':') },
    'machines-dir'   => $machines_dir,
    'host-root'      => $host_root,
    'state-dir'      => $state_dir,
    'health-timeout' => $health_timeout,
    'lock-timeout'   => $lock_timeout,
    'fact-file'      => $fact_file,
    'metrics-file'   => $metrics_file,
  }.filter |$key, $value| { $value =~ NotUndef }
  $lines = ($named + $settings).map |$key, $value| { [$key, String($value)] }.convert_to(Hash)

  if $manage_package {
    package { $package_name:
      ensure => $package_ensure,
    }
  }
  if $manage_config {
    # The package creates /etc/render; without it, this does (no mode: the package's stands).
    $config_dir = $config_file.regsubst('/[^/]+$', '')
    if $config_dir != '' {
      if !defined(File[$config_dir]) {
        file { $config_dir: ensure => directory }
      }
      if $manage_package { Package[$package_name] -> File[$config_dir] }
    }
    file { $config_file:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => epp('render/render.conf.epp', { 'settings' => $lines }),
    }
  }
  if $manage_timer {
    # The timer starts the check; the service itself is oneshot and never enabled or started
    # here (that would run a check on every Puppet run).
    service { 'render-drift.timer':
      ensure => running,
      enable => true,
    }
    if $manage_config { File[$config_file] -> Service['render-drift.timer'] }
    if $manage_package { Package[$package_name] -> Service['render-drift.timer'] }
  }
}
